//! `display`: (protocol to be written by the driver's author).
