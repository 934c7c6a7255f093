from django.urls import path

from accounts import views

app_name = "accounts"

urlpatterns = [
    path("login/", views.placeholder, name="login"),
    path("logout/", views.placeholder, name="logout"),
    path("register/", views.placeholder, name="register"),
    path("profile/", views.placeholder, name="profile"),
    path("verify/resend/", views.placeholder, name="verify_resend"),
]
