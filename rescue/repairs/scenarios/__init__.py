"""One module per boot failure; each registers its `Scenario` when imported (rescue.repairs.base).

The registry imports every module here by itself: adding a scenario is adding a module (and its
validation cases in tests/validation), nothing else.
"""
