"""Real-robot adapter layer: the driver bridge (``server``/``client``, CurveZMQ + msgpack), the safety layer
applied on the driver side (``safety``), vendor backends (``fmb_franka``) and the sim digital twin
(``sim_twin``). Modules are imported on use, so the sim path never loads networking code.
"""
