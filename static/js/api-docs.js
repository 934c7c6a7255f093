// The API's interactive docs (/api/v1/docs): Swagger UI on the OpenAPI document named in the
// page's #swagger-settings. No inline script: the page's CSP allows only nonced files.
"use strict";
(function () {
  var settings = JSON.parse(document.getElementById("swagger-settings").textContent);
  window.ui = window.SwaggerUIBundle(
    Object.assign({}, settings, {
      dom_id: "#swagger-ui",
      presets: [window.SwaggerUIBundle.presets.apis],
      layout: "BaseLayout",
      // The public validator would be a request to a third party; the CSP refuses it anyway.
      validatorUrl: null,
    }),
  );
})();
