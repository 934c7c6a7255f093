from django.urls import path

from accounts import views
from accounts.twofactor import views as twofactor_views

app_name = "accounts"

urlpatterns = [
    path("login/", views.login_view, name="login"),
    path("logout/", views.LogoutView.as_view(), name="logout"),
    path("login/unlock/<str:token>/", views.login_unlock, name="login_unlock"),
    path("register/", views.register, name="register"),
    path("verify/sent/", views.verify_sent, name="verify_sent"),
    path("verify/resend/", views.verify_resend, name="verify_resend"),
    path("verify/<str:token>/", views.verify, name="verify"),
    path("password/reset/", views.PasswordResetView.as_view(), name="password_reset"),
    path(
        "password/reset/sent/",
        views.PasswordResetDoneView.as_view(),
        name="password_reset_done",
    ),
    path(
        "reset/<uidb64>/<token>/",
        views.PasswordResetConfirmView.as_view(),
        name="password_reset_confirm",
    ),
    path(
        "password/reset/complete/",
        views.PasswordResetCompleteView.as_view(),
        name="password_reset_complete",
    ),
    path("password/change/", views.PasswordChangeView.as_view(), name="password_change"),
    path("profile/", views.profile, name="profile"),
    path("sessions/sign-out-everywhere/", views.sign_out_everywhere, name="sign_out_everywhere"),
    path("two-factor/", twofactor_views.verify, name="twofactor_verify"),
    path("two-factor/set-up/", twofactor_views.enroll, name="twofactor_enroll"),
    path(
        "two-factor/recovery-codes/",
        twofactor_views.recovery_codes,
        name="twofactor_recovery_codes",
    ),
    path(
        "two-factor/recovery-codes/new/",
        twofactor_views.regenerate,
        name="twofactor_regenerate",
    ),
    path("two-factor/turn-off/", twofactor_views.disable, name="twofactor_disable"),
    path("addresses/add/", views.address_add, name="address_add"),
    path("addresses/<int:pk>/edit/", views.address_edit, name="address_edit"),
    path("addresses/<int:pk>/delete/", views.address_delete, name="address_delete"),
    path("addresses/<int:pk>/default/", views.address_default, name="address_default"),
    path("data-export/", views.data_export_request, name="data_export_request"),
    path("data-export/<int:pk>/", views.data_export_download, name="data_export_download"),
]
