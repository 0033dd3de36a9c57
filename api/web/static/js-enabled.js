// GOV.UK Frontend's body classes, set before the page is drawn (a file: the pages allow no
// inline script, see api/security.py)
document.body.className += ' js-enabled' + ('noModule' in HTMLScriptElement.prototype ? ' govuk-frontend-supported' : '');
