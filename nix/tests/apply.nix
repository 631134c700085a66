# The example policy with `services.isolate.apply` on for two of its stacks: tests/nix_module.rs
# checks the isolate-apply unit NixOS renders from it.
{
  imports = [ ./homelab.nix ];
  services.isolate.apply = {
    enable = true;
    stacks = [
      "immich"
      "paperless"
    ];
  };
}
