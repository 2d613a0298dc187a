"""Fan pages of activities and applications (being written)."""

from django.http import Http404


def _todo(request, **kwargs):
    raise Http404


activity_list = activity_detail = activity_apply = _todo
application_list = application_detail = application_withdraw = _todo
