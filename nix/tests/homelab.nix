# policies/homelab.toml as `services.isolate` attributes: tests/nix_module.rs checks that the
# module writes the same TOML as the file.
{
  services.isolate = {
    enable = true;
    audit.enable = true;
    usage.enable = true;
    policy = {
      user_prefix = "stk-";
      shared_group = "stk-shared";
      legacy_owner = "alice";
      pools = {
        uid_first = 800;
        uid_last = 899;
        subid_first = 1879048192;
        subid_last = 2147352575;
        subid_size = 65536;
      };
      stacks = {
        immich = {
          data = [
            "/srv/immich/library"
            "/srv/immich/postgres"
          ];
          migrate = "shift";
        };
        paperless = {
          data = [
            "/srv/paperless/data"
            "/srv/paperless/media"
            "/srv/paperless/consume"
          ];
          migrate = "reown";
        };
        jellyfin = {
          data = [
            "/srv/jellyfin/config"
            "/srv/jellyfin/cache"
          ];
          migrate = "auto";
        };
      };
      shares = {
        photos = {
          path = "/srv/media/photos";
          read = [ "jellyfin" ];
          write = [ "immich:1000" ];
        };
        media = {
          path = "/srv/media/video";
          read = [
            "jellyfin"
            "immich"
          ];
        };
      };
    };
  };
}
