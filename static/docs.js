// Starts Swagger UI on /docs; a file of its own because the content security policy forbids inline scripts.
const root = document.getElementById("swagger-ui");
window.ui = SwaggerUIBundle({ url: root.dataset.openapiUrl, dom_id: "#swagger-ui", deepLinking: true,
                              persistAuthorization: true });
