using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Routing;

namespace SecureMesh.Node.Control;

/// <summary>The trust store's peers, dialling, and peers found by discovery.</summary>
internal static class PeerEndpoints
{
    public static void Map(IEndpointRouteBuilder v1)
    {
        v1.MapGet("/peers", (string? state, NodeControlService control, CancellationToken ct) => control.ListPeersAsync(state, ct));
        v1.MapGet("/peers/pending", (NodeControlService control, CancellationToken ct) => control.ListPeersAsync("pending", ct));
        v1.MapPost("/peers", (AddPeerRequest request, NodeControlService control, CancellationToken ct) => control.AddPeerAsync(request, ct));
        v1.MapPost("/peers/{id}/trust", (string id, NodeControlService control, CancellationToken ct) => control.TrustPeerAsync(id, ct));
        v1.MapPost("/peers/{id}/block", (string id, BlockRequest? request, NodeControlService control, CancellationToken ct) => control.BlockPeerAsync(id, request?.Reason, ct));
        v1.MapPost("/peers/{id}/unblock", (string id, NodeControlService control, CancellationToken ct) => control.UnblockPeerAsync(id, ct));
        v1.MapPost("/peers/{id}/rename", (string id, RenameRequest request, NodeControlService control, CancellationToken ct) => control.RenamePeerAsync(id, request.Name, ct));
        v1.MapDelete("/peers/{id}", (string id, NodeControlService control, CancellationToken ct) => control.RemovePeerAsync(id, ct));
        v1.MapPost("/peers/{id}/connect", (string id, NodeControlService control, CancellationToken ct) => control.ConnectPeerAsync(id, ct));
        v1.MapPost("/ping", (PingRequest request, NodeControlService control, CancellationToken ct) => control.PingAsync(request.Address, request.Count, ct));
        v1.MapGet("/discovered", (NodeControlService control, CancellationToken ct) => control.ListDiscoveredAsync(ct));
    }
}
