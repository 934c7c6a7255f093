"""Image tasks: take the product's id, call the image service."""

from django.tasks import task

from shop.services import images as image_services


@task(queue_name="default")
def make_product_thumbnails(product_id: int) -> None:
    """Make the WebP thumbnails of a product's image (card and product page sizes)."""
    image_services.make_product_thumbnails(product_id=product_id)
