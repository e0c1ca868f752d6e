from django.db import models


class Tree(models.Model):
    """A tree of genomes. Its root holds the chunks every genome in it shares, so a change to any
    genome rewrites them: concurrent changes in one tree must never interleave."""

    name = models.CharField(max_length=200)
    #: The shared chunks (here, the labels of the changes applied, in order).
    chunks = models.JSONField(default=list)
    #: The fencing token of the last lease that wrote the chunks.
    fence = models.BigIntegerField(default=0)


class Genome(models.Model):
    tree = models.ForeignKey(Tree, on_delete=models.CASCADE, related_name="genomes")
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.CASCADE)
    name = models.CharField(max_length=200)
