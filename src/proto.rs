//! meshplane's own gRPC API (proto/), and its implementation over the pipeline's live state.

use tonic::{Request, Response, Status};

use crate::report::Published;

/// Generated from `proto/meshplane/admin/v1/admin.proto`.
#[allow(clippy::all, missing_docs)]
pub mod admin {
    tonic::include_proto!("meshplane.admin.v1");
}

use admin::admin_server::{Admin, AdminServer};
use admin::{GetStatusRequest, GetStatusResponse, NodeVersions};

pub struct AdminService {
    pipeline: Published,
}

impl AdminService {
    pub fn server(pipeline: Published) -> AdminServer<AdminService> {
        AdminServer::new(AdminService { pipeline })
    }
}

fn problem(p: &crate::diag::Problem) -> admin::Problem {
    admin::Problem {
        file: p.file.display().to_string(),
        line: p.line as u32,
        path: p.path.clone(),
        message: p.message.clone(),
    }
}

#[tonic::async_trait]
impl Admin for AdminService {
    async fn get_status(
        &self,
        _: Request<GetStatusRequest>,
    ) -> Result<Response<GetStatusResponse>, Status> {
        let mut resp = {
            let st = self.pipeline.status();
            GetStatusResponse {
                ready: st.ready,
                valid: st.last.model.is_some(),
                problems: st.last.problems.iter().map(problem).collect(),
                warnings: st.last.warnings.iter().map(problem).collect(),
                reloads_accepted: st.reloads_accepted,
                reloads_rejected: st.reloads_rejected,
                nodes: Vec::new(),
            }
        };
        for key in self.pipeline.cache.keys() {
            if let Some(snap) = self.pipeline.cache.get(&key) {
                let [c, e, l, r] = snap.versions();
                resp.nodes.push(NodeVersions {
                    node_id: key,
                    clusters: c.into(),
                    endpoints: e.into(),
                    listeners: l.into(),
                    routes: r.into(),
                });
            }
        }
        Ok(Response::new(resp))
    }
}
