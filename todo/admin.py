"""The Django admin for todos: list, search, filter by entity ref and completion, edit."""

from django.contrib import admin

from todo.models import Todo


@admin.register(Todo)
class TodoAdmin(admin.ModelAdmin):
    list_display = ("title", "entity_ref", "completed", "created_by", "created_at")
    list_editable = ("completed",)
    list_filter = ("completed", "entity_ref")
    search_fields = ("title", "entity_ref", "created_by")
    readonly_fields = ("id", "created_by", "created_at")
    fields = ("id", "title", "entity_ref", "completed", "created_by", "created_at")
    date_hierarchy = "created_at"
