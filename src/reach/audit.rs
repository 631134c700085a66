//! Audit of `reaches`: each declared path, tried with a TCP connect from the reaching stack's
//! network namespace.
