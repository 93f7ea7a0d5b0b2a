using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace SecureMesh.Node.Control;

/// <summary>Shares, search, downloads and quarantine on the running node.</summary>
internal static class TransferEndpoints
{
    public static void Map(IEndpointRouteBuilder v1)
    {
        v1.MapGet("/shares", (TransferControlService t, CancellationToken ct) => t.ListSharesAsync(ct));
        v1.MapPost("/shares", (ShareRequest body, TransferControlService t, CancellationToken ct) => t.AddShareAsync(body.Path, body.With, body.IncludeHidden, ct));
        v1.MapDelete("/shares", async (string path, TransferControlService t, CancellationToken ct) =>
        {
            await t.RemoveShareAsync(path, ct);
            return Results.NoContent();
        });
        v1.MapGet("/search", (string q, TransferControlService t, CancellationToken ct) => t.SearchAsync(q, ct));
        v1.MapPost("/downloads", (DownloadRequest body, TransferControlService t, CancellationToken ct) => t.StartDownloadAsync(body.ContentId, body.OutDir, ct));
        v1.MapGet("/downloads", (TransferControlService t, CancellationToken ct) => t.ListDownloadsAsync(ct));
        // ?waitMs=N (at most TransferControlService.MaxWait) answers as soon as the download ends, else after N ms:
        // a follower polls without missing the end by up to a poll interval.
        v1.MapGet("/downloads/{contentId}", (string contentId, int? waitMs, TransferControlService t, CancellationToken ct) =>
            t.GetDownloadAsync(contentId, TimeSpan.FromMilliseconds(Math.Clamp(waitMs ?? 0, 0, (int)TransferControlService.MaxWait.TotalMilliseconds)), ct));
        v1.MapDelete("/downloads/{contentId}", async (string contentId, TransferControlService t, CancellationToken ct) =>
        {
            await t.CancelDownloadAsync(contentId, ct);
            return Results.NoContent();
        });
        v1.MapGet("/quarantine", (TransferControlService t, CancellationToken ct) => t.ListQuarantineAsync(ct));
        v1.MapPost("/quarantine/{id:long}/release", (long id, ReleaseRequest body, TransferControlService t, CancellationToken ct) => t.ReleaseQuarantineAsync(id, body.To, ct));
        v1.MapDelete("/quarantine/{id:long}", async (long id, TransferControlService t, CancellationToken ct) =>
        {
            await t.DeleteQuarantineAsync(id, ct);
            return Results.NoContent();
        });
    }
}
