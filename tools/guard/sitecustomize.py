"""Installed on PYTHONPATH by the test runner: every Python process (notebook kernels, torchrun ranks)
starts with the network guard on, so a notebook that reaches the network fails loudly."""

import os

if os.environ.get("WORKSHOP_NETWORK_GUARD") == "1":
    from workshop_utils.offline import install_network_guard

    install_network_guard()
