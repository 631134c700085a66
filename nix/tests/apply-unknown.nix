# `services.isolate.apply` listing a stack the policy lacks: an evaluation assertion.
{
  imports = [ ./homelab.nix ];
  services.isolate.apply = {
    enable = true;
    stacks = [ "immich" "nextcloud" ];
  };
}
