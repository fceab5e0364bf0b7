"""The Django admin for todos: list, search, filter by entity ref and completion, edit."""

from django.contrib import admin

from todo.models import Todo


@admin.register(Todo)
class TodoAdmin(admin.ModelAdmin):
    list_display = ("title", "entity_ref", "completed", "created_at")
    list_editable = ("completed",)
    list_filter = ("completed", "entity_ref")
    search_fields = ("title", "entity_ref")
    readonly_fields = ("id", "created_at")
    fields = ("id", "title", "entity_ref", "completed", "created_at")
    date_hierarchy = "created_at"
