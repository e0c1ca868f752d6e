from django.db import models


class Job(models.Model):
    title = models.CharField(max_length=200)
    slots = models.PositiveIntegerField(default=2)


class Application(models.Model):
    APPLIED, SHORTLISTED, REJECTED = "applied", "shortlisted", "rejected"

    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="applications")
    applicant = models.CharField(max_length=200)
    status = models.CharField(max_length=20, default=APPLIED)
