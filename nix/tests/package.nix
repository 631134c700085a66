# Evaluates nix/package.nix with nixpkgs' real `lib` (from the nixos-eval harness) and stand-ins
# for stdenv, rustPlatform and installShellFiles: what buildRustPackage would be given.
#
#   nix-instantiate --eval --strict --json nix/tests/package.nix --arg harness /tmp/x/nixpkgs-eval
{ harness }:
let
  lib = import (harness + "/lib");
  args = import ../package.nix {
    inherit lib;
    stdenv = {
      buildPlatform.canExecute = _: true;
      hostPlatform = { };
    };
    rustPlatform.buildRustPackage = a: a;
    installShellFiles = "installShellFiles";
  };
in
{
  inherit (args) pname version postInstall doCheck;
  inherit (args.meta) mainProgram;
  lockFile = baseNameOf (toString args.cargoLock.lockFile);
}
