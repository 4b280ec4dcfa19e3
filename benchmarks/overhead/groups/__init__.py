"""Groups of interleaved measurements: one module per question, with the goals it answers.

A module here has two names that `plan.py` reads:

* `groups(settings, server) -> list[Group]`: the groups to run. A `Group` holds a key
  (its row in the report and in the goals), a title, a mode ("sync", "asyncio",
  "trio"), a `Size` from `settings.py`, and `build`: a function, called inside the
  group's event loop, that returns `Built(configs, skipped, cleanup)`. Each `Config`
  is one way of making one logical request, `call(arg)` (or `await call(arg)`),
  returning the final response. The first two configurations are the baseline A and
  its A/A twin A0: build them with `harness.control`. `sync_and_async` makes the
  `-sync` and `-async` pair of a group from one builder.
* `GOALS`: a tuple of `goals.Goal(name, limit, unit, measure)`, every one "value <=
  limit", with a measure from `goals.py` (`added_us`, `cost_ratio`, `ratio_to_bare`,
  `max_new_connections`, `counter`) or one written next to it.

To add a group: write the module, give it a `Size` in `Settings` (the quick run is
derived), and add the module to `plan.GROUP_MODULES`, in the order of the report.
"""
