// The stack's podman API socket: `GET /_ping` and "which containers run?" over HTTP on a unix socket.
// OWNED BY THE SYSTEMD HELPER.
