//! `portcullis`: the daemon and its command-line client.
#![allow(dead_code)]

mod firewall;
mod sources;
mod store;

fn main() {
    println!("portcullis: under construction");
}
