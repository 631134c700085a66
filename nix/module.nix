# NixOS module `services.isolate`: the policy as Nix attributes (written to
# /etc/isolate/policy.toml, isolate's default path), the tool on PATH with its man pages and
# completions, and the audit timer writing Prometheus metrics. Import it next to the accounts
# module `isolate export nixos` writes; the two declare disjoint options.
{
  config,
  lib,
  ...
}:
let
  inherit (lib) mkEnableOption mkIf mkOption types;
  cfg = config.services.isolate;
  toml = import ./toml.nix { inherit lib; };
  # The stack accounts (declared by the exported module): a change restarts isolate-apply.
  prefix = if cfg.policy.user_prefix == null then "stk-" else cfg.policy.user_prefix;
  stackAccounts = lib.mapAttrs (_: u: {
    inherit (u) uid subUidRanges subGidRanges linger;
  }) (lib.filterAttrs (name: _: lib.hasPrefix prefix name) config.users.users);

  # null means "not in the file": isolate applies the default isolate-policy(5) names.
  optional =
    type: description:
    mkOption {
      type = types.nullOr type;
      default = null;
      inherit description;
    };

  absolutePath = types.strMatching "/.*";
  # `stack` or `stack:container_uid`
  grant = types.strMatching "[a-z_][a-z0-9_-]*(:[0-9]+)?";

  stack = types.submodule {
    options = {
      data = mkOption {
        type = types.listOf absolutePath;
        description = "Absolute directories the stack's containers mount.";
      };
      migrate = optional (types.enum [
        "auto"
        "shift"
        "reown"
      ]) "How the data's owners change (default auto).";
      uid = optional types.ints.unsigned "Pin the stack's uid.";
      subid_start = optional types.ints.unsigned "Pin the start of the stack's subordinate range.";
      outside_hardlinks = optional (types.enum [
        "refuse"
        "skip"
      ]) "Files with links outside the data: refuse the migration (default) or skip them.";
      closed = optional types.bool "Close the data to every uid outside the stack (default true).";
      compose = optional (types.listOf absolutePath) "The stack's compose files (hand-off: images, volumes, service).";
      project = optional types.str "The compose project name (default: the stack's name).";
      env_files = optional (types.listOf absolutePath) "Env files given to the stack user alone (0400).";
      images = optional (types.listOf types.str) "Images to copy beyond those the compose files name.";
      service = optional types.bool "Install the user unit that runs the compose project.";
      compose_command = optional (types.listOf types.str) "The compose command the unit runs (default podman-compose).";
      reaches = optional (types.listOf types.str) "Other stacks' services this stack reaches: `stack:service:port` entries.";
      quadlets = optional (types.listOf absolutePath) "The stack's quadlet unit files, instead of compose files (moved to the stack user's quadlet directory).";
      limits = optional limits "The stack slice's resource budget (systemd's units and syntax; isolate-policy(5)).";
    };
  };

  size = types.either types.ints.unsigned (types.strMatching "[0-9]+[KMGTPEkmgtpe]?|infinity");
  weight = types.ints.between 1 10000;
  # [stacks.NAME.limits]: declared on NixOS as systemd.slices by `isolate export nixos`.
  limits = types.submodule {
    options = {
      memory_max = optional size "MemoryMax= of the stack's slice (\"4G\", \"infinity\").";
      memory_high = optional size "MemoryHigh= of the stack's slice: throttled above it.";
      memory_swap_max = optional size "MemorySwapMax= of the stack's slice.";
      cpu_weight = optional weight "CPUWeight= of the stack's slice (1..10000, 100 by default).";
      cpu_quota = optional (types.strMatching "[0-9]+%") "CPUQuota= of the stack's slice, percent of one CPU (\"150%\").";
      tasks_max = optional (types.either types.ints.positive (types.enum [ "infinity" ])) "TasksMax= of the stack's slice.";
      io_weight = optional weight "IOWeight= of the stack's slice (io is not delegated below user@.service).";
      disk_max = optional (types.either types.ints.positive (types.strMatching "[0-9]+[KMGTPEkmgtpe]?")) "The disk budget of the stack's data and store (project quota or btrfs qgroup).";
    };
  };

  share = types.submodule {
    options = {
      path = mkOption {
        type = absolutePath;
        description = "A shared directory.";
      };
      read = optional (types.listOf grant) "Stacks (or stack:container_uid) that read it.";
      write = optional (types.listOf grant) "Stacks (or stack:container_uid) that write it.";
      mode = optional (types.enum [
        "acl"
        "group"
      ]) "How access is granted: named ACL entries (default) or the shared group.";
    };
  };
in
{
  options.services.isolate = {
    enable = mkEnableOption "isolate, one Unix user per rootless Podman stack";

    package = mkOption {
      type = types.package;
      description = "The isolate package (the flake's nixosModules.default sets it).";
    };

    policy = {
      user_prefix = optional types.str "Stack user = prefix + stack name (default \"stk-\").";
      shared_group = optional types.str "Group every stack user joins (default \"stk-shared\").";
      legacy_owner = optional types.str "The user whose rootless containers own the data today.";
      adopt = optional (types.listOf types.str) "Existing accounts isolate did not create that it may take over (stack users, the shared group); never root or privileged ones.";
      pools = {
        uid_first = optional types.ints.unsigned "First uid for stack users (default 800).";
        uid_last = optional types.ints.unsigned "Last uid for stack users (default 899).";
        subid_first = optional types.ints.unsigned "First subordinate id (default 1879048192, 0x70000000).";
        subid_last = optional types.ints.unsigned "Last subordinate id (default 2147352575).";
        subid_size = optional types.ints.positive "Ids per stack range (default 65536).";
      };
      stacks = mkOption {
        type = types.attrsOf stack;
        default = { };
        description = "The stacks, by name.";
      };
      shares = mkOption {
        type = types.attrsOf share;
        default = { };
        description = "Directories several stacks read or write.";
      };
    };

    policyText = mkOption {
      type = types.str;
      readOnly = true;
      description = "The policy rendered as TOML, as written to /etc/isolate/policy.toml.";
    };

    apply = {
      enable = mkEnableOption ''
        the isolate-apply unit: `isolate apply` at every boot and every switch that changes the
        policy or the stack accounts (after linger-users.service and the accounts), so
        nixos-rebuild, colmena and deploy-rs apply isolate on every host; isolate exiting 1 (a
        step failed) or 2 (refused) fails the unit and so the deploy'';
      stacks = mkOption {
        type = types.listOf types.str;
        default = [ ];
        description = "The stacks to apply (`--stack` each); every stack of the policy when empty.";
      };
    };

    audit = {
      enable = mkEnableOption "the isolate-audit timer (Prometheus text file)";
      interval = mkOption {
        type = types.str;
        default = "1h";
        description = "Time between two audits (systemd time span).";
      };
      output = mkOption {
        type = absolutePath;
        default = "/var/lib/prometheus-node-exporter-text-files/isolate.prom";
        description = "The metrics file; point node-exporter's textfile collector at its directory.";
      };
    };

    usage = {
      enable = mkEnableOption "the isolate-usage timer (each stack's slice: memory, CPU, tasks, OOM kills; no data walk)";
      interval = mkOption {
        type = types.str;
        default = "1min";
        description = "Time between two reads of the slices (systemd time span).";
      };
      output = mkOption {
        type = absolutePath;
        default = "/var/lib/prometheus-node-exporter-text-files/isolate-usage.prom";
        description = "The usage metrics file, beside the audit's (the audit then leaves these families out).";
      };
    };
  };

  config = mkIf cfg.enable {
    services.isolate.policyText = toml.toTOML cfg.policy;

    environment.systemPackages = [ cfg.package ];
    environment.etc."isolate/policy.toml".text = cfg.policyText;

    systemd.tmpfiles.rules =
      lib.optional cfg.audit.enable "d ${dirOf cfg.audit.output} 0755 root root -"
      ++ lib.optional cfg.usage.enable "d ${dirOf cfg.usage.output} 0755 root root -";

    systemd.services.isolate-audit = mkIf cfg.audit.enable {
      description = "Audit isolate's stacks into a Prometheus text file";
      documentation = [
        "man:isolate(8)"
        "man:isolate-policy(5)"
      ];
      after = [
        "local-fs.target"
        "dbus.service"
        "systemd-logind.service"
      ];
      restartTriggers = [ cfg.policyText ];
      serviceConfig = {
        Type = "oneshot";
        # Exit 1 only means "findings": the metrics were written.
        SuccessExitStatus = 1;
        # With the usage timer on, the slices' families come from its own file only.
        ExecStart = "${cfg.package}/bin/isolate audit ${lib.optionalString cfg.usage.enable "--skip usage "}--format prometheus --output ${cfg.audit.output}";
        Nice = 10;
        IOSchedulingClass = "idle";
        ProtectSystem = "strict";
        ReadWritePaths = [ (dirOf cfg.audit.output) ];
        ProtectHome = "read-only";
        PrivateTmp = true;
        PrivateNetwork = true;
        NoNewPrivileges = true;
      };
    };

    assertions = map (name: {
      assertion = cfg.policy.stacks ? ${name};
      message = "services.isolate.apply.stacks: `${name}` is not a stack of services.isolate.policy.stacks (${lib.concatStringsSep ", " (builtins.attrNames cfg.policy.stacks)})";
    }) (lib.optionals cfg.apply.enable cfg.apply.stacks);

    # Accounts come from the module `isolate export nixos` writes (activation, or
    # systemd-sysusers/userborn at boot), linger from linger-users.service; apply then does
    # what stays imperative (data, sockets, hand-off). A deploy rollback undoes the accounts
    # and this unit, never migrated data: that is `isolate rollback --stack S`.
    systemd.services.isolate-apply = mkIf cfg.apply.enable {
      description = "Apply isolate's policy (one Unix user per rootless Podman stack)";
      documentation = [
        "man:isolate(8)"
        "man:isolate-policy(5)"
      ];
      wantedBy = [ "multi-user.target" ];
      wants = [ "linger-users.service" ];
      after = [
        "linger-users.service"
        "systemd-sysusers.service"
        "userborn.service"
        "systemd-logind.service"
        "dbus.service"
        "local-fs.target"
      ];
      # Restarted (so applied again) at a switch that changes the policy or the stack accounts.
      restartTriggers = [
        cfg.policyText
        (builtins.toJSON stackAccounts)
      ];
      path = lib.optional (config.virtualisation.podman.enable or false) config.virtualisation.podman.package;
      serviceConfig = {
        Type = "oneshot";
        RemainAfterExit = true;
        # No SuccessExitStatus: isolate's 1 and 2 fail the unit, and the switch with it.
        ExecStart = lib.concatStringsSep " " (
          [ "${cfg.package}/bin/isolate apply" ] ++ map (s: "--stack ${lib.escapeShellArg s}") cfg.apply.stacks
        );
      };
    };

    systemd.services.isolate-usage = mkIf cfg.usage.enable {
      description = "Read isolate's stacks' resource use into a Prometheus text file";
      documentation = [ "man:isolate(8)" ];
      restartTriggers = [ cfg.policyText ];
      serviceConfig = {
        Type = "oneshot";
        ExecStart = "${cfg.package}/bin/isolate audit --only usage --format prometheus --output ${cfg.usage.output}";
        ProtectSystem = "strict";
        ReadWritePaths = [ (dirOf cfg.usage.output) ];
        ProtectHome = "read-only";
        PrivateTmp = true;
        PrivateNetwork = true;
        NoNewPrivileges = true;
      };
    };

    systemd.timers.isolate-usage = mkIf cfg.usage.enable {
      description = "Read isolate's stacks' resource use every ${cfg.usage.interval}";
      wantedBy = [ "timers.target" ];
      timerConfig = {
        OnBootSec = "1min";
        OnUnitActiveSec = cfg.usage.interval;
        AccuracySec = "5s";
      };
    };

    systemd.timers.isolate-audit = mkIf cfg.audit.enable {
      description = "Audit isolate's stacks every ${cfg.audit.interval}";
      wantedBy = [ "timers.target" ];
      timerConfig = {
        OnBootSec = "5min";
        OnUnitActiveSec = cfg.audit.interval;
        RandomizedDelaySec = "5min";
      };
    };
  };
}
