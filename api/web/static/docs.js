// The API's interactive documentation (Swagger UI, served from this site: no CDN, no inline
// script)
window.ui = SwaggerUIBundle({ url: '/openapi.json', dom_id: '#swagger-ui', deepLinking: true });
