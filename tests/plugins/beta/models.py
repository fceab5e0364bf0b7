from django.db import models


class Note(models.Model):
    text = models.CharField(max_length=200)

    class Meta:
        db_table = "notes"

    def __str__(self) -> str:
        return self.text
