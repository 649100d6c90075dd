"""ResNet Studio: see a ResNet classify and learn."""

__version__ = "0.1.0"
