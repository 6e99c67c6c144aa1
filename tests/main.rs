//! The one integration-test binary: it runs the real `userport` executable on the fixtures.

mod cli;
