//! Virtual-clock tests of the responder.
