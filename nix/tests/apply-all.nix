# `services.isolate.apply` with no stacks listed: every stack of the policy.
{
  imports = [ ./homelab.nix ];
  services.isolate.apply.enable = true;
}
