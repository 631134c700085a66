//! Disk use per stack (placeholder).
