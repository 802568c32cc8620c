//! The sections that load but do not reach Envoy yet: each gets a warning naming its field, so
//! nothing in a file is silently dropped. When a section becomes translated, its warning goes.

use crate::diag::Problem;
use crate::source::{Body, Document};
use crate::spec::VirtualNodeSpec;

/// The warnings of one document.
struct Warnings<'a> {
    doc: &'a Document,
    warnings: &'a mut Vec<Problem>,
}

impl Warnings<'_> {
    /// A field Envoy cannot be given at all in meshplane's translation, with why.
    fn cannot(&mut self, field: &str, why: &str) {
        self.warnings.push(self.doc.problem(field, why));
    }
}

/// Warn about every field that loads but does not reach Envoy yet, so nothing is silently dropped.
pub(super) fn report_untranslated(doc: &Document, warnings: &mut Vec<Problem>) {
    let mut w = Warnings { doc, warnings };
    match &doc.body {
        Body::Mesh(_) => {}
        Body::VirtualNode(e) => {
            let Some(spec) = &e.spec else { return };
            virtual_node(&mut w, spec);
        }
        Body::VirtualGateway(_)
        | Body::VirtualService(_)
        | Body::VirtualRouter(_)
        | Body::Route(_)
        | Body::GatewayRoute(_) => {}
    }
}

fn virtual_node(w: &mut Warnings, spec: &VirtualNodeSpec) {
    if let Some(sd) = &spec.service_discovery {
        if sd
            .aws_cloud_map
            .as_ref()
            .is_some_and(|c| !c.attributes.is_empty())
        {
            w.cannot(
                "spec.serviceDiscovery.awsCloudMap.attributes",
                "Cloud Map instance attributes cannot be honoured: the service is resolved by its DNS name, which returns every instance; ignored",
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::model::document::tests::parse;

    #[test]
    fn translated_fields_load_without_a_warning() {
        // A grpcRoute is translated: no warning for it. A gateway listener's health check is one
        // App Mesh ignored too (`validate::ignored`).
        let out = parse(
            "kind: Route\nmeshName: demo\nvirtualRouterName: r\nrouteName: g\nspec:\n  grpcRoute:\n    match: {serviceName: x}\n    action: {weightedTargets: [{virtualNode: a, weight: 1}]}\n---\nkind: VirtualGateway\nmeshName: demo\nvirtualGatewayName: gw\nspec:\n  listeners: [{portMapping: {port: 80, protocol: http}, healthCheck: {healthyThreshold: 2, unhealthyThreshold: 2, intervalMillis: 5000, timeoutMillis: 2000, protocol: http}}]\n",
        );
        assert!(out.problems.is_empty(), "{:?}", out.problems);
        assert_eq!(out.documents.len(), 2);
        let w: Vec<String> = out.warnings.iter().map(|p| p.to_string()).collect();
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(
            w[0].starts_with(
                "mesh.yaml:14: spec.listeners[0].healthCheck: a virtual gateway listener's health check configures nothing in Envoy"
            ),
            "{w:?}"
        );
    }
}
