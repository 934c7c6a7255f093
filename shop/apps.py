from django.apps import AppConfig
from django.conf import settings
from PIL import Image


class ShopConfig(AppConfig):
    name = "shop"
    verbose_name = "Shop"

    def ready(self) -> None:
        # Every Pillow decode in this process refuses a decompression bomb (shop.services.images
        # refuses anything above the limit itself, with a clear message, before decoding).
        Image.MAX_IMAGE_PIXELS = settings.PRODUCT_IMAGE_MAX_PIXELS
