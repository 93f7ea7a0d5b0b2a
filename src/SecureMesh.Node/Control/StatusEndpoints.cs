using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Routing;

namespace SecureMesh.Node.Control;

/// <summary><c>GET /v1/status</c>.</summary>
internal static class StatusEndpoints
{
    public static void Map(IEndpointRouteBuilder v1)
    {
        v1.MapGet("/status", (NodeControlService control, CancellationToken ct) => control.GetStatusAsync(ct));
    }
}
