"""Loading the compiled libraries (torch, OpenVINO, imagecodecs, PyAV) with Ctrl-C held back.

A KeyboardInterrupt raised while a C++ extension initialises aborts the whole process
(pybind11's ``terminate called after throwing an instance of 'pybind11::error_already_set'``) or
is swallowed by it; nothing of the user's exists yet at that point, so a Ctrl-C there is kept and
acted on as soon as the libraries are loaded: one line and exit status 130, as anywhere else.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util

from ..interrupts import interrupts_held

#: what the work needs, loaded in this order (numpy first: torch's C start-up imports it);
#: torch is left out when the run may go without it (OpenVINO from its conversion cache: the
#: library then loads torch itself, Ctrl-C held back, only if the model is not converted yet)
#: and openvino when the OpenVINO backend cannot run
LIBRARIES = ("numpy", "torch", "imagecodecs", "PIL.Image", "openvino")


def load_libraries(*, openvino: bool, torch: bool = True) -> None:
    """Import the compiled libraries the work will use, with Ctrl-C held back while they load."""
    skipped = {name for name, wanted in (("torch", torch), ("openvino", openvino)) if not wanted}
    names = [name for name in LIBRARIES if name not in skipped]
    if "openvino" in names:
        from ..backends.openvino import without_telemetry

        without_telemetry()
    with interrupts_held():
        for name in names:
            if importlib.util.find_spec(name.split(".")[0]) is not None:
                # a missing or broken optional library is the backend's to report (OpenVINO's, whose
                # libraries fail with OSError or RuntimeError, by falling back to torch)
                with contextlib.suppress(ImportError, *((OSError, RuntimeError) if name == "openvino" else ())):
                    importlib.import_module(name)
