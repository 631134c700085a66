# Evaluates nix/module.nix with NixOS's real users module and nixpkgs lib from the nixos-eval
# harness (unpacked at test time; its path is `harness`), next to the accounts module
# `isolate export nixos` wrote (`accounts`), and returns what the module produced.
#
#   nix-instantiate --eval --strict --json nix/tests/eval.nix \
#     --arg harness /tmp/x/nixpkgs-eval --arg accounts ./accounts.nix --arg host ./homelab.nix
{
  harness,
  accounts,
  host,
}:
let
  lib = import (harness + "/lib");
  # Options of NixOS modules the harness does not declare and services.isolate writes to
  # (systemd.timers is the harness's own, typed by NixOS's unit modules).
  stubs =
    { lib, ... }:
    {
      options.systemd.tmpfiles.rules = lib.mkOption {
        type = lib.types.listOf lib.types.str;
        default = [ ];
      };
    };
  evaluated = import (harness + "/harness/eval.nix") {
    configuration = {
      imports = [
        ../module.nix
        stubs
        accounts
        host
      ];
      users.mutableUsers = true;
      services.isolate.package = {
        type = "derivation";
        name = "isolate";
        outPath = "/nix/store/00000000000000000000000000000000-isolate";
      };
    };
  };
  inherit (evaluated) config;
in
{
  policyToml = config.environment.etc."isolate/policy.toml".text;
  auditExecStart = config.systemd.services.isolate-audit.serviceConfig.ExecStart;
  timer = {
    inherit (config.systemd.timers.isolate-audit) wantedBy timerConfig;
    text = evaluated.summary.units.system."isolate-audit.timer" or null;
  };
  usageExecStart = config.systemd.services.isolate-usage.serviceConfig.ExecStart;
  usageTimer = {
    inherit (config.systemd.timers.isolate-usage) wantedBy timerConfig;
    text = evaluated.summary.units.system."isolate-usage.timer" or null;
  };
  tmpfiles = config.systemd.tmpfiles.rules;
  # services.isolate.apply: the unit text NixOS installs, how it is enabled, and the other
  # units it is ordered after, as NixOS renders them (null when absent).
  apply = {
    text = evaluated.summary.units.system."isolate-apply.service" or null;
    install = evaluated.summary.unitInstall.system."isolate-apply.service" or null;
    links = builtins.filter (l: lib.hasInfix "isolate-apply" l) evaluated.summary.unitLinks.system;
    lingerUsers = evaluated.summary.units.system."linger-users.service" or null;
    lingerVars = evaluated.summary.lingerVars;
  };
  packages = map (p: p.name) config.environment.systemPackages;
  users = builtins.attrNames (lib.filterAttrs (n: _: lib.hasPrefix "stk-" n) config.users.users);
  failedAssertions = evaluated.summary.failedAssertions;
  # The policy keys services.isolate declares, per table: tests hold them against the parser's.
  policyKeys =
    let
      policy = evaluated.options.services.isolate.policy;
      keysOf = o: builtins.attrNames (builtins.removeAttrs (o.type.getSubOptions [ ]) [ "_module" ]);
    in
    {
      top = builtins.attrNames policy;
      pools = builtins.attrNames policy.pools;
      stacks = keysOf policy.stacks;
      shares = keysOf policy.shares;
    };
}
