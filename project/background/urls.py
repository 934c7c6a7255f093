from django.urls import path

from project.background import views

app_name = "background"

urlpatterns = [
    path("metrics", views.metrics, name="metrics"),
]
