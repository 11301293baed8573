"""The adiff app's UI.  The arrows point one way: app.py -> components -> adiff.

One folder per tab, in app.py's order: ``schedules``, ``forward``, ``reverse``, ``compare``, ``density``,
``guidance``, ``complete``, ``adaptation``, ``train``.  Each holds ``layout.py`` (widgets and their wiring only;
``build(ctx)``), ``handlers.py`` (request dataclasses whose ``parse()`` checks the raw values, the tab's session state,
and plain functions of ``(ctx, session, request)`` that return or yield view data; a large tab keeps its requests in
``requests.py``), ``view.py`` (pure: figures, player payloads, words) and ``lessons.py`` (its "try this → notice that"
prompts as checked records).

Shared by the tabs: ``columns`` (the arrangement every tab shares: controls | result | lesson, the intro fold, the
phone's figure fitting), ``context`` (the AppContext: device, sessions, pools, model lookup), ``controls`` (the control
groups: model picker, solver controls, class/CFG, seed/count, run/stop), ``follow`` (the groups follow the chosen
model and solver), ``reward_picker``, ``wiring`` (event ->
handler), ``fields`` (field checks and field-named errors), ``limits`` (every bound and fixed number), ``streaming``
(the one throttle), ``state`` (per-session state and per-run folders), ``links`` (deep links), ``lesson``,
``choices`` (classes and solvers a model offers), ``arrays`` and ``curves`` (tensors -> plain data), ``player``
(the trajectory player's payloads), the figure builders (``plotting``, ``figures``, ``schedule_figures``,
``reward_figures``), ``result_cache``, ``gif``, ``summaries`` and ``help`` (the glossary)."""
