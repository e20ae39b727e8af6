"""Local cloud: COS, CI and SCF emulated over real HTTP on loopback. Never deployed."""
from .ci import EngineError
from .cloud import LocalCloud
from .faults import Faults

__all__ = ["LocalCloud", "EngineError", "Faults"]
