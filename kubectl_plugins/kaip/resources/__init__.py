"""Our public API names and the resource types we address: pure data, no I/O.

Rule: every annotation, label, Secret type, condition and CRD name of the product is defined here
once, and every other package takes it from here.
"""
