"""Local cloud: COS, CI and SCF emulated over real HTTP on loopback. Never deployed."""
