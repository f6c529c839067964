//! Firewall backends behind one small trait.
