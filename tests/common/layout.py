"""Where CPython puts an object's slots: for the tests of the kernel's cache-line layouts."""

import ctypes


def slot_offsets(obj, names):
    """Where each of ``names`` lies in ``obj`` (bytes from its start): CPython's real layout, found by
    setting each slot to a fresh object and finding that object's address in ``obj``'s memory."""
    marks = {}
    for name in names:
        mark = object()
        setattr(obj, name, mark)
        marks[id(mark)] = (name, mark)
    words = type(obj).__basicsize__ // 8
    found = {}
    for i in range(words):
        value = ctypes.c_void_p.from_address(id(obj) + 8 * i).value
        if value in marks:
            found[marks[value][0]] = 8 * i
    return found
