"""Names of topics and queues, derived from the manifest in one place.

<app>-<context>                          a context's events (SNS topic)
<app>-<context>-<side>-sync              a context's events for the side
                                         that follows its writer
<app>-<context>-consumes-<source>        events a service consumes
<app>-<context>-monolith-consumes-<source>  events of an extracted source
                                         that the monolith's context consumes
<app>-<context>-<side effect>            a side effect's function
"""


def topic(app: str, context: str) -> str:
    return f"{app}-{context}"


def follow_queue(app: str, context: str, side: str) -> str:
    return f"{app}-{context}-{side}-sync"


def consumer_queue(app: str, context: str, source: str) -> str:
    return f"{app}-{context}-consumes-{source}"


def monolith_consumer_queue(app: str, context: str, source: str) -> str:
    return f"{app}-{context}-monolith-consumes-{source}"


def side_effect_queue(app: str, context: str, effect: str) -> str:
    return f"{app}-{context}-{effect.replace('_', '-')}"
