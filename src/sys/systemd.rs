// logind linger and the stack user's systemd manager, over D-Bus (zbus): no systemctl.
// OWNED BY THE SYSTEMD HELPER.
