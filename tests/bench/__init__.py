"""Tests of `tollway bench`: unit tests of its definitions, integration tests against the emulator."""
