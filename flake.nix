# isolate for Nix: the package (nix/package.nix), an overlay, and the NixOS module
# `services.isolate` (nix/module.nix) with the package preset.
{
  description = "isolate: every rootless Podman stack on a host gets its own Unix user";

  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-unstable";

  outputs =
    { self, nixpkgs }:
    let
      systems = [
        "x86_64-linux"
        "aarch64-linux"
      ];
      forEachSystem = f: nixpkgs.lib.genAttrs systems (system: f nixpkgs.legacyPackages.${system});
    in
    {
      packages = forEachSystem (pkgs: rec {
        isolate = pkgs.callPackage ./nix/package.nix { };
        default = isolate;
      });

      overlays.default = final: _prev: { isolate = final.callPackage ./nix/package.nix { }; };

      nixosModules.default =
        { lib, pkgs, ... }:
        {
          imports = [ ./nix/module.nix ];
          services.isolate.package = lib.mkDefault self.packages.${pkgs.stdenv.hostPlatform.system}.isolate;
        };
    };
}
