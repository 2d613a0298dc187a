"""xgc's own settings, plus a count of database queries for the benchmark.

Every response carries X-Bench-Queries: the queries Django sent while making
it (not the ping of CONN_HEALTH_CHECKS, which bypasses Django's cursors).
"""

from xgc.settings import *  # noqa: F403

MIDDLEWARE = ["tests.bench_settings.count_queries", *MIDDLEWARE]  # noqa: F405


def count_queries(get_response):
    from django.db import connection

    def middleware(request):
        sent = []

        def counting(execute, sql, params, many, context):
            sent.append(sql)
            return execute(sql, params, many, context)

        with connection.execute_wrapper(counting):
            response = get_response(request)
        response["X-Bench-Queries"] = str(len(sent))
        return response

    return middleware
