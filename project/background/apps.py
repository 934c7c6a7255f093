from django.apps import AppConfig


class BackgroundConfig(AppConfig):
    name = "project.background"
    label = "background"
    verbose_name = "Background tasks"
