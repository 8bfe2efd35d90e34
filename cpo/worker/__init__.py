"""`cpo worker run-task SPEC.json`: one attempt of one task, on whatever machine runs it.

`runtask` is the program: read the `TaskLaunch` (cpo.executors.spec), check out its
branch from the git remote (`checkout`, sparse when the task is), ready the clone
(`prep`: ports taken on this machine, setup commands), run the agent exactly as `cpo run`
does here (cpo.run.attempt: same backends, completion protocol and verdict, and `prep`'s
nudges; cpo.run.claim: same hand-over of its work; cpo.run.stash: same stash check, with
`stashed` pushing what the agent left in the clone's stash), push the branch, and print
every event as a JSON line. `lifeline`
ties the agent's life to the worker's: SIGTERM, or the death of the worker's parent,
stops the agent's whole process group.
May import: `cpo.run` (attempt, claim, protocol, agentrun, taskenv, nudge, ready, ports,
recovery, report, stash), `cpo.executors`, `cpo.agents`, `cpo.git`, `cpo.proc`,
`cpo.orphans`, `cpo.secrets`, `cpo.errors`; never `cpo.cli*` or `cpo.commands`.
"""
