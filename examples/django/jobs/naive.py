"""The job board as the story wrote it: count the shortlisted, and if a slot is left, shortlist.
Two requests both count one shortlisted, both see a slot left, both shortlist: three people
hold two slots. (A lock would have to be taken on the job row, by every code path, before the
count; the one the story had was on a lazy queryset that never ran.)"""

from .models import Application


def shortlist(application: Application) -> bool:
    job = application.job
    taken = Application.objects.filter(job=job, status=Application.SHORTLISTED).count()
    if taken >= job.slots:
        return False
    application.status = Application.SHORTLISTED
    application.save(update_fields=["status"])
    return True
