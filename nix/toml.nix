# A TOML writer in plain Nix for isolate's policy: nested attribute sets become tables
# (`[stacks.immich]`), null values are left out (isolate then applies its default).
# Pure evaluation, so the module's policy file can be checked without building anything.
{ lib }:
let
  inherit (lib)
    concatMapStringsSep
    concatStrings
    filterAttrs
    isAttrs
    isBool
    isInt
    isList
    isString
    mapAttrsToList
    ;

  key = k: if builtins.match "[A-Za-z0-9_-]+" k != null then k else builtins.toJSON k;

  # JSON's string and number syntax is valid TOML for the values a policy holds.
  value =
    v:
    if isString v || isInt v then
      builtins.toJSON v
    else if isBool v then
      lib.boolToString v
    else if isList v then
      "[" + concatMapStringsSep ", " value v + "]"
    else
      throw "isolate policy: cannot write ${builtins.typeOf v} as TOML";

  withoutNulls = lib.filterAttrsRecursive (_: v: v != null);

  scalars = attrs: filterAttrs (_: v: !isAttrs v) attrs;
  tables = attrs: filterAttrs (_: isAttrs) attrs;

  keyValues = attrs: concatStrings (mapAttrsToList (k: v: "${key k} = ${value v}\n") (scalars attrs));

  tablesOf =
    path: attrs:
    concatStrings (
      mapAttrsToList (
        k: v:
        let
          here = path ++ [ k ];
        in
        lib.optionalString (scalars v != { }) "\n[${concatMapStringsSep "." key here}]\n${keyValues v}"
        + tablesOf here (tables v)
      ) attrs
    );
in
{
  toTOML =
    attrs:
    let
      clean = withoutNulls attrs;
    in
    keyValues clean + tablesOf [ ] (tables clean);
}
